"""Local providers: models shipped inside PyPI packages (the `local` extra), run
on this machine's CPU. Nothing is downloaded at run time."""
