"""The erasure methods, as peers: ``t2vunlearning`` (trained adapters), ``refusal`` (closed-form low-rank edit),
``uce`` (Unified Concept Editing, closed form), ``esd`` (ESD-x: the backbone's attention projections fine-tuned),
``baselines`` (inference-time: negative prompting, SAFREE, VideoEraser); ``weight_edits`` is the lower room the
weight-editing methods share (layer sites, activations, edits and their files)."""
