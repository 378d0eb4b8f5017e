"""fer-edge workstation side: FER2013 loaders, architectures, training and evaluation."""
