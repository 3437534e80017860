module baseline

go 1.19
