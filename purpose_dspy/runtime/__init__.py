"""Running programs: the agent's step loop, many tasks within an LM budget, the editor's loop, the LM-call trace."""
