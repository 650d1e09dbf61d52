"""Domain adaptation: complementary masks, losses, the EMA teacher, methods and the trainer."""
