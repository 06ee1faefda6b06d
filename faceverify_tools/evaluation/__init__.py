"""Measuring accuracy: `script/evaluate` (python -m faceverify_tools.evaluation).

    metrics        scores -> FMR/FNMR, 10-fold accuracy, TAR at FMR, EER
    embedding_run  images -> embeddings, through the predictor's own pipeline, in worker processes
    idcards        a photo -> a synthetic ID card photographed on a table
    report         scores -> the JSON report, the text summary and calibration files
    plots          scores -> ROC curve and score histograms (PNG)
"""
