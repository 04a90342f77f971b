from snapzen.cli import main

main()
