"""The erasure methods, as peers: ``t2vunlearning`` (trained adapters), ``refusal`` (closed-form edit),
``baselines`` (inference-time: negative prompting, SAFREE)."""
