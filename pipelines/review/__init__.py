"""What marketing reads in MLflow: plain-language run summaries with their charts, the
action mix across a scored base, and the status of each registered version."""
