"""`make bench`: development measurements, not part of the pipeline. run.py drives them, train_profile.py
times one training run in its own process, full_size.py builds Phi-3.5-mini's shapes with random weights."""
