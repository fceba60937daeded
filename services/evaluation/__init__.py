"""The evaluation service: scores uploaded detections against uploaded annotations."""
