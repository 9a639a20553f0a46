"""One ComponentResource per DR concern, plus the pure rules they share with the sandbox."""
