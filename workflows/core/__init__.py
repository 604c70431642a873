"""What every workflow shares: the spec vocabulary and loading, durations, conditions, the
timeline, retry policies and timeouts, search attributes, workflow names, deployment windows."""
