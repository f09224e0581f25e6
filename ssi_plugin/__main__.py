from ssi_plugin.cli import main

main()
