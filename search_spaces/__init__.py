"""Built-in DSL files (architecture spaces, accelerator templates, energy tables): data, not code."""
