"""One module per study, read top-down: crops, cifar, iic, coreset, digits."""
