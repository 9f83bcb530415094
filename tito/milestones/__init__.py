"""The milestones wing: whole-stack runs on real data (digits, cnn, gpt) built from the student's own modules."""
