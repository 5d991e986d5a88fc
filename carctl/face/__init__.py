"""The optional face-recognition module. Nothing in the control core or the safety path imports it."""
