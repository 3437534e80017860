module dmclient

go 1.19
