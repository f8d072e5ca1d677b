from silopt.driver import console_main

console_main()
