"""What carpool tells its operators: JSON logs with request ids, and OpenTelemetry traces."""
