"""``python -m langchain_wandb_inference``: the ``wb-inference`` command line.

Why: it works where the console script is not on ``PATH`` (a venv not activated, a
notebook's ``!python -m ...``).
"""

from langchain_wandb_inference.cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m langchain_wandb_inference"))
