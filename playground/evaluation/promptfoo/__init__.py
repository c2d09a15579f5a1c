"""promptfoo configs run as they are: ``config`` reads and checks the file, ``run``
runs its prompts × tests × providers, ``grading`` applies its assertions."""
