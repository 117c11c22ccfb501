"""File readers: one module per format, each checking its input and naming file:line:column."""
