module early.invalid/quietinit

go 1.26
