"""Model builders: one short function per architecture (keras-io style)."""
