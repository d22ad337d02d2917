"""Campaign files shared by the command-line tests (imported by test modules)."""

BRANIN = """
[campaign]
name = "branin-cli"
n_evals = 8
seed = 1

[[parameters]]
name = "x1"
type = "real"
low = -5.0
high = 10.0

[[parameters]]
name = "x2"
type = "real"
low = 0.0
high = 15.0

[objective]
type = "python"
function = "bayestune.testfunctions:branin"
options = {}
"""
