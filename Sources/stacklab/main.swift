import StackLabCLI
StackLab.main()
