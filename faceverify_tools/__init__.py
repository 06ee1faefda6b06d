"""Development tooling for the face verifier: measuring it, loading it, and serving it for tests.

None of this is part of the model image (`.dockerignore` leaves it out) and the `faceverify`
pipeline never imports it. Each command has a thin entry point in `script/`:

    evaluation               script/evaluate: accuracy on a pairs file, calibration files
    benchmark                script/benchmark: speed against the original pipeline and the network floor
    soak                     script/soak: many predictions through the real Cog server
    measure_face_choice      script/measure-face-choice: the face choice and the score floor
    measure_detection_sizes  script/measure-detection-sizes: the detection sizes
    measure_decode_sizes     script/measure-decode-sizes: reduced JPEG decoding
    measure_quality          script/measure-quality: quality issues' false alarms, detection and EDC
    degrade                  degraded copies of real photos (blur, light, size, tilt, cut, a second face)
    standin                  script/build-standin-packs: buffalo_l's architectures with random weights (needs torch)
    standin_networks         IResNet-50 and SCRFD in PyTorch, for standin
    measure_networks         script/measure-networks: recognizer batching and threads, detector costs
    cogserver                the real Cog HTTP server as a subprocess (tests, soak, benchmark)
    schema                   script/generate-schema: .cog/openapi_schema.json, as cog build makes it
    pairs                    LFW-style pairs files
    inputs                   inputs as callers send them: data URIs, hand-built PNGs
    shared                   where ../shared (weights and images) lives

The figures these commands produce are in docs/, each with the command that made it.
"""
