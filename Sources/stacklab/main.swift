import StackLabCLI
await StackLab.run()
