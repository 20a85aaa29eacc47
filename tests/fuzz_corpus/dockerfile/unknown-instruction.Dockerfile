FROM debian
FROOM x
