from quantdesk.cli import main

main()
