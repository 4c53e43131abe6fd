from ifkd.cli import main
import sys

sys.exit(main())
