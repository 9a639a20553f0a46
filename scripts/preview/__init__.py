"""The credential-free preview: the program under Pulumi's mock runtime, with AWS's own rules enforced."""
