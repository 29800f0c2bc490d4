from tsfbench.cli import main

main()
