"""ML Commons: model records and groups, tasks, deployed predictors, runtimes, connectors and algorithms."""
