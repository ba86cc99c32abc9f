"""Tables, plots and the reference numbers of the papers."""
