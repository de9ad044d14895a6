"""False negatives and junk: flags with reasons, the learned scorer, the annotation store, exports."""
