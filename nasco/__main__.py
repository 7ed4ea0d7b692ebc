from nasco.cli import main
import sys
sys.exit(main())
