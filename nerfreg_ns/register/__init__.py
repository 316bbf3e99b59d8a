"""Registration of two sequences: inputs for the plugins, and the pipeline that runs them."""
