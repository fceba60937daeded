"""The spectrogram service: gRPC ``bdisc.v1.Spectrogram`` renders tiles on demand."""
