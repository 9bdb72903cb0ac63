import sys

from traffic_hub.cli import main

sys.exit(main())
