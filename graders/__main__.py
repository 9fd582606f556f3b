import sys

from graders.cli import main

if __name__ == "__main__":  # a spawned grading worker imports this module without running it
    sys.exit(main())
