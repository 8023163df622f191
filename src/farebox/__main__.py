from farebox.entrypoints.cli import main

main()
