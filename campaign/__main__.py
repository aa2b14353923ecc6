import sys

from campaign.run import main

sys.exit(main())
