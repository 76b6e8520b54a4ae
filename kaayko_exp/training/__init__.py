"""Training: start/resume (runner), the stage sequence (pipeline), fit callbacks, interrupts."""
