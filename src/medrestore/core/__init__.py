"""Core: data types, errors, FFT, registry, file helpers. Depends on nothing else in medrestore."""
