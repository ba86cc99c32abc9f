import torch
from models_helpers import make_target, tiny_criterion, tiny_detector

from hqm.models.criterion import total_loss


def test_tiny_model_overfits_two_synthetic_images():
    torch.manual_seed(0)
    model = tiny_detector(num_obj=5, num_verb=4, num_queries=4, dec_layers=2)
    criterion = tiny_criterion(num_obj=5, num_verb=4)
    images = torch.zeros(2, 3, 64, 64)
    images[0, 0, 8:40, 8:32] = 2.0
    images[0, 1, 24:56, 36:60] = 2.0
    images[1, 2, 4:28, 30:60] = 2.0
    mask = torch.zeros(2, 64, 64, dtype=torch.bool)
    targets = [
        make_target([2], [[0, 3]], [[0.31, 0.375, 0.375, 0.5]], [[0.75, 0.625, 0.375, 0.5]], 4),
        make_target([4, 1], [[1], [2]], [[0.7, 0.25, 0.45, 0.37]] * 2, [[0.3, 0.7, 0.3, 0.3], [0.0] * 4], 4),
    ]
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    history = []
    for _ in range(200):
        loss = total_loss(criterion(model(images, mask), targets), criterion.weight_dict)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        optimizer.step()
        history.append(loss.item())
        if history[-1] <= 0.1 * history[0]:
            break
    assert history[-1] <= 0.1 * history[0], (history[0], min(history), len(history))
