import sys

from securechat.cli import main

sys.exit(main())
