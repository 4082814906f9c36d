from registry.cli import main_exit

main_exit()
