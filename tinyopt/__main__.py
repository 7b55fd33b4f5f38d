from tinyopt.cli import main

main()
