from lossdoctor.cli import main

main()
