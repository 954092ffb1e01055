"""`python -m purpose_dspy.cli ...`: the same command as `purpose-dspy ...`."""

from purpose_dspy.cli import main

main()
