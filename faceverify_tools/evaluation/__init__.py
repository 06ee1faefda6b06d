"""Measuring accuracy: `script/evaluate` (python -m faceverify_tools.evaluation).

    metrics        scores -> FMR/FNMR, 10-fold accuracy, TAR at FMR, EER
    embedding_run  images -> embeddings, through the predictor's own pipeline, in worker processes
    idcards        a photo -> a synthetic ID card photographed on a table
    report         scores -> the JSON report and the text summary
    calibrate      all-vs-all pair counts -> calibration files (FMR upper bounds, default threshold)
    plots          scores -> ROC curve and score histograms (PNG)
"""
