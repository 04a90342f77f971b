from snapzen.cli import main

if __name__ == "__main__":  # a spawned ticket worker imports this module too
    main()
